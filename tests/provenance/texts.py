"""Texts for the provenance tests: model-like answers in English and Chinese, and the light
edits a copier makes (words swapped for synonyms, sentences reordered, characters changed)."""

from __future__ import annotations

ENGLISH = [
    "Photosynthesis is the process by which green plants turn light into chemical energy. "
    "Chlorophyll in the leaves absorbs mostly red and blue light and reflects green, which is "
    "why leaves look green to us. The energy splits water molecules, releasing oxygen as a "
    "by-product, and drives the Calvin cycle, which fixes carbon dioxide from the air into "
    "sugars. Those sugars feed the plant and, through food chains, nearly every other living "
    "thing on Earth. Without photosynthesis the atmosphere would hold almost no free oxygen.",
    "To make a good cup of pour-over coffee, start with freshly roasted beans and grind them "
    "to the texture of coarse sand just before brewing. Heat the water to about ninety-three "
    "degrees Celsius, rinse the paper filter, and use roughly sixty grams of coffee per litre. "
    "Pour a little water first and let the grounds bloom for thirty seconds, then pour slowly "
    "in circles until you reach the target weight. The whole brew should take three to four "
    "minutes; if it runs faster, grind finer next time.",
    "The French Revolution began in 1789 when financial crisis, food shortages and resentment "
    "of aristocratic privilege came together. The Estates-General was called for the first "
    "time in over a century, and the Third Estate declared itself a National Assembly. The "
    "storming of the Bastille in July became a symbol of popular revolt. Over the next decade "
    "the monarchy was abolished, the king was executed, and the Terror claimed thousands of "
    "lives before Napoleon Bonaparte seized power in 1799.",
    "A binary search finds an item in a sorted list by repeatedly halving the range that could "
    "contain it. Compare the target with the middle element: if they are equal you are done, "
    "if the target is smaller continue in the left half, otherwise in the right half. Each "
    "step discards half of the remaining elements, so a list of a million items needs at most "
    "twenty comparisons. The catch is that the list must already be sorted, and off-by-one "
    "mistakes in the bounds are a classic source of bugs.",
    "Regular exercise improves both physical and mental health. Adults should aim for at least "
    "one hundred and fifty minutes of moderate activity a week, such as brisk walking or "
    "cycling, plus muscle-strengthening exercises on two days. Exercise lowers blood pressure, "
    "helps control weight and reduces the risk of heart disease and type two diabetes. It also "
    "releases endorphins, which lift mood, and it improves sleep. Starting small and building "
    "up gradually is the best way to make the habit stick.",
]

# A lightly edited copy of ENGLISH[0]: a few words swapped for synonyms, two sentences moved.
ENGLISH_EDITED = (
    "Chlorophyll in the leaves absorbs mostly red and blue light and reflects green, which is "
    "why leaves appear green to us. Photosynthesis is the process by which green plants convert "
    "light into chemical energy. The energy splits water molecules, releasing oxygen as a "
    "by-product, and powers the Calvin cycle, which fixes carbon dioxide from the air into "
    "sugars. Without photosynthesis the atmosphere would contain almost no free oxygen. Those "
    "sugars feed the plant and, through food chains, nearly every other living thing on Earth."
)

CHINESE = [
    "人工智能是计算机科学的一个分支，它试图理解智能的实质，并生产出一种能以与人类智能相似的方式"
    "做出反应的智能机器。该领域的研究包括机器人、语言识别、图像识别、自然语言处理和专家系统等。"
    "人工智能从诞生以来，理论和技术日益成熟，应用领域也不断扩大。",
    "长城是中国古代的军事防御工程，修筑的历史可上溯到西周时期。春秋战国时期各国为了防御外敌，"
    "纷纷在边境修筑长城。秦始皇统一六国后，把原来各国的长城连接起来，形成了万里长城。"
    "现存的长城大多是明代修建的，是世界上最伟大的建筑工程之一。",
    "绿茶是未经发酵制成的茶，保留了鲜叶的天然物质，含有的茶多酚、儿茶素、叶绿素等营养成分较多。"
    "冲泡绿茶时水温不宜过高，一般以八十度左右为宜，这样既能泡出茶香，又不会破坏茶叶中的维生素。"
    "好的绿茶汤色清澈，香气清新，滋味鲜爽。",
]

# CHINESE[0] with a few characters changed (试图→尝试, 生产→制造, 日益→越来越).
CHINESE_EDITED = (
    "人工智能是计算机科学的一个分支，它尝试理解智能的实质，并制造出一种能以与人类智能相似的方式"
    "做出反应的智能机器。该领域的研究包括机器人、语言识别、图像识别、自然语言处理和专家系统等。"
    "人工智能从诞生以来，理论和技术越来越成熟，应用领域也不断扩大。"
)

UNRELATED = (
    "The committee will meet on Thursday afternoon to review the budget for next year, and "
    "every department head is asked to bring a short summary of planned spending, hiring "
    "needs and any risks that could delay the projects already approved last spring."
)

UNRELATED_CHINESE = (
    "明天上午九点在三楼会议室召开部门例会，请各位同事提前准备好本季度的工作总结和下季度的计划，"
    "会议预计持续一个半小时。"
)
